"""The `deattack` command: one entry (main), one module per command group."""
