"""Live city data: devices, Hong Kong open-data connectors, the simulator and the dashboard."""
