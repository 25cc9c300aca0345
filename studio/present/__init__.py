"""Qt-free formatting of results for people: the console text and the view models the GUI draws."""
