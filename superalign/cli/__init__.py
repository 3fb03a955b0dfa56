"""The `superalign` command line: `main` holds the app and the shared commands; each experiment's commands live
in their own module here (`eval`, `loop`, `w2s`, `sandwich`, `review`, `serve`, and the tool commands `export`, `adapter`, `plugins`) and are registered by `superalign.cli.experiments`."""
