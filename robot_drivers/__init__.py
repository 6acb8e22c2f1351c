"""Drivers for real robots (LeRobot robots, cameras on threads), implementing :class:`vlash.contracts.Driver`."""
