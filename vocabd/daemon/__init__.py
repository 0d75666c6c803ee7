"""The daemon side: inbox watcher, Huey queue, the light process that runs both, status and login agent."""
