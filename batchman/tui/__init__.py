"""The `batchman` terminal UI (urwid).

``app`` owns the main loop and the stack of views; ``keys`` holds every binding as data;
``commands`` is the only TUI code that changes the status file (through
``batchman.actions``, one short transaction each); ``tasklist`` is the model of the task
list and the ListWalker that builds rows only for what is on screen; ``views`` has one
class per screen or dialog.
"""
