"""The `superalign` command line: `main` holds the app and the shared commands; each experiment's commands live
in their own module here (`loop`, `w2s`, `oversight`, `serve`) and are registered by `superalign.experiments`."""
