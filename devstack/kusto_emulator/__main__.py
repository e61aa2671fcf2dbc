"""Command line entry point: ``python -m devstack.kusto_emulator``."""

from devstack.kusto_emulator.server import main

if __name__ == "__main__":
    main()
