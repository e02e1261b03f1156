"""The stack's command line (`python scripts/stack.py ...`, `python -m verriflo_tools.stack ...`)."""

from __future__ import annotations

import argparse
import json
import os
import time

from verriflo_tools import stack as package
from verriflo_tools.stack.deploy import deploy, offline_api_url, template_parameters
from verriflo_tools.stack.interpreters import python313
from verriflo_tools.stack.localstack import start_localstack
from verriflo_tools.stack.page import publish_classroom_page, publish_console
from verriflo_tools.stack.ports import choose
from verriflo_tools.stack.processes import running_pid, stop_pid
from verriflo_tools.stack.seeding import demo_key_works, seed_demo
from verriflo_tools.stack.servers import mongodb_uri, redis_url, start_mongo, start_redis
from verriflo_tools.stack.standin import livekit_url, start_livekit
from verriflo_tools.stack.state import REGION, Stack, StackError, log


def cmd_servers_start(stack: Stack) -> dict[str, int]:
    stack.ensure_dirs()
    ports = stack.ports()
    if not running_pid(stack, "livekit", "standins.livekit"):
        # chosen now: the functions are deployed with this URL; the stand-in starts after deploy
        choose(ports, "livekit", 7880 if stack.name == "dev" else None)
    start_mongo(stack, ports)
    stack.save_ports(ports)
    start_redis(stack, ports)
    stack.save_ports(ports)
    return ports


def cmd_localstack_start(stack: Stack) -> dict[str, int]:
    stack.ensure_dirs()
    ports = stack.ports()
    start_localstack(stack, ports)
    stack.save_ports(ports)
    return ports


def cmd_up(stack: Stack, deploy_stack: bool, seed: bool, build_key: str | None = None) -> dict[str, str]:
    started = time.monotonic()
    cmd_servers_start(stack)
    ports = cmd_localstack_start(stack)
    values = {
        "STACK": stack.name,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['localstack']}",
        "AWS_DEFAULT_REGION": REGION,
        "MONGODB_URI": mongodb_uri(ports),
        "REDIS_URL": redis_url(ports),
    }
    stack.write_env(values)
    if deploy_stack:
        outputs = deploy(stack, ports, build_key)
        values["API_URL"] = offline_api_url(outputs, ports)
        values.update({f"STACK_OUTPUT_{k}": v for k, v in outputs.items()})
        if "LiveKitUrl" in template_parameters():
            start_livekit(stack, ports, outputs, values["API_URL"])
            stack.save_ports(ports)
            values["LIVEKIT_URL"] = livekit_url(ports)
            publish_classroom_page(stack, ports, values["API_URL"])  # the tutor panel calls the API
        if "STACK_OUTPUT_LiveUiUrl" in values and publish_console(stack, ports, values["API_URL"]):
            values["CONSOLE_URL"] = f"{values['STACK_OUTPUT_LiveUiUrl']}/console/"
        stack.write_env(values)
        if seed and not demo_key_works(values["API_URL"], stack.read_env().get("DEMO_API_KEY", "")):
            demo = seed_demo(stack, ports)
            values["DEMO_ORG_ID"] = str(demo.get("orgId", ""))
            values["DEMO_API_KEY"] = str(demo.get("apiKey", ""))
            values["DEMO_OWNER_EMAIL"] = str(demo.get("ownerEmail", ""))
            values["DEMO_OWNER_PASSWORD"] = str(demo.get("ownerPassword", ""))
            values["DEMO_VIEWER_EMAIL"] = str(demo.get("viewerEmail", ""))
            values["DEMO_VIEWER_PASSWORD"] = str(demo.get("viewerPassword", ""))
            stack.write_env(values)
    log(f"stack {stack.name} up in {time.monotonic() - started:.1f}s")
    return stack.read_env()


def cmd_down(stack: Stack) -> None:
    # LocalStack first: its Lambda processes may hold connections to the stores
    stop_pid(stack, "livekit", "standins.livekit", grace_s=5)
    stop_pid(stack, "localstack", "localstack.runtime.main")
    stop_pid(stack, "redis", "redis-server")
    stop_pid(stack, "mongodb", "secantusd")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=package.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        choices=[
            "up",
            "down",
            "servers-start",
            "servers-stop",
            "localstack-start",
            "localstack-stop",
            "env",
            "python313",
        ],
    )
    parser.add_argument("--stack", default=os.environ.get("VERRIFLO_STACK", "dev"))
    parser.add_argument("--no-deploy", action="store_true")
    parser.add_argument("--build-key", help="share the SAM build folder with other stacks of this key")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the stack's env as JSON on stdout")
    args = parser.parse_args(argv)
    stack = Stack(args.stack)
    try:
        if args.command == "python313":
            print(python313())
            return 0
        if args.command == "up":
            env = cmd_up(stack, not args.no_deploy, not args.no_seed, args.build_key)
            if args.json:
                print(json.dumps(env))
            else:
                _print_summary(env)
        elif args.command == "down":
            cmd_down(stack)
        elif args.command == "servers-start":
            cmd_servers_start(stack)
        elif args.command == "servers-stop":
            stop_pid(stack, "redis", "redis-server")
            stop_pid(stack, "mongodb", "secantusd")
        elif args.command == "localstack-start":
            cmd_localstack_start(stack)
        elif args.command == "localstack-stop":
            stop_pid(stack, "localstack", "localstack.runtime.main")
        elif args.command == "env":
            print(json.dumps(stack.read_env()))
    except StackError as exc:
        log(f"error: {exc}")
        return 1
    return 0


def _print_summary(env: dict[str, str]) -> None:
    api = env.get("API_URL", "(not deployed)")
    key = env.get("DEMO_API_KEY", "")
    print(f"""
Verriflo stack '{env.get("STACK")}' is up.
  API base URL : {api}
  AWS endpoint : {env.get("AWS_ENDPOINT_URL")}
  MongoDB      : {env.get("MONGODB_URI")}
  Redis        : {env.get("REDIS_URL")}
  Demo org key : {key or "(not seeded)"}
  Classroom    : {env.get("STACK_OUTPUT_LiveUiUrl", "(not deployed)")}/iframe/live?token=<join token>
  LiveKit      : stand-in at {env.get("LIVEKIT_URL", "(not started)")} (no media; README, "Live classrooms")
  Console      : {env.get("CONSOLE_URL", "(not built: make console-page)")}
  Dashboard    : owner  {env.get("DEMO_OWNER_EMAIL", "")} / {env.get("DEMO_OWNER_PASSWORD", "")}
                 viewer {env.get("DEMO_VIEWER_EMAIL", "")} / {env.get("DEMO_VIEWER_PASSWORD", "")}
                 (the Console's sign-in, or POST /v1/auth/login)
  (all of this is in .local/{env.get("STACK")}/env)

  curl -H "VF-ORG-ID: {key or "<key>"}" {api}/v1/health/ready
""")
