"""Monitoring and early warning (监测预警): sensors, alarm rules, readings, alarms that become orders."""
