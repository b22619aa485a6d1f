"""Plugins that ship with core and load before installed ones."""
