"""The `dfm` command line: argument parsing and presentation only; the work is in dfm.pipelines."""
