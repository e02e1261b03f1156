"""Run the whole Verriflo stack on this machine, offline: MongoDB-wire server, Redis, LocalStack.

One "stack" = one state folder `.local/<name>/` holding its data, logs, pid files and an `env`
file with every URL a client or test needs. Stacks never share ports or folders, so `make up`
(stack `dev`) and the e2e tests (stack `e2e`) run side by side.

    python scripts/stack.py up [--stack dev] [--no-deploy]   start what is not running, deploy, seed
    python scripts/stack.py down [--stack dev]                stop by recorded pids
    python scripts/stack.py localstack-start|localstack-stop [--stack dev]
    python scripts/stack.py servers-start|servers-stop [--stack dev]
    python scripts/stack.py env [--stack dev]                 print the env file as JSON

Stdlib only, so any python3 can run it before a venv exists. Waiting is bounded polling.
Modules follow the steps: `state` (folders, names), `processes`, `ports`, `interpreters`,
`servers` (MongoDB-wire, Redis), `localstack`, `build` (sam build), `deploy`, `standin` (LiveKit),
`page` (the classroom page), `seeding` (indexes, demo org), `cli` (the commands).
"""
