from superalign.cli.main import entry

entry()
