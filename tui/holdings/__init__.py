"""Holdings: the controller (file, view, live range score), the panel and the dialog."""
