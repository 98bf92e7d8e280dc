"""The status page: the HTML export of one generation of the status file."""
