"""Local stand-ins for services that cannot run on this machine (they speak the real wire protocols)."""
