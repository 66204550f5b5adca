"""Importing this module is an error the trigger tests look for: creation must never import it."""

raise SystemExit("trigger_actions_import_bomb was imported")
