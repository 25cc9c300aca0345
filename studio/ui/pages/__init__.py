"""The pages of the main window, each subscribed to the application state."""
