"""Interfaces only: the command line (`dfm.app.cli`) and the web tool (`dfm.app.web`). They parse input, call
`dfm.pipelines` (through `Session`) and present the results; no pipeline logic lives here."""
