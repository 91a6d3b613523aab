"""The DFM web tool: a FastAPI app over the same Session API as the CLI (`dfm gui`)."""
