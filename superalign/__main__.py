from superalign.cli import entry

entry()
