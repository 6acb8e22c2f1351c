"""Robot drivers: the interface the control process talks to, and its implementations."""

from robot_drivers.interface import Driver, DriverReading, RobotFeatures

__all__ = ["Driver", "DriverReading", "RobotFeatures"]
