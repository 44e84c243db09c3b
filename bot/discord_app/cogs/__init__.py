"""One cog per command group: queries (generated from the command layer), writes, mentions."""
