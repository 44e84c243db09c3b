"""The Discord surface: the only package of computewatch that imports discord.py."""
