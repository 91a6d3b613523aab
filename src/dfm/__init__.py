"""DFM — Deep Facial Manipulator: semantic editing of facial expressions in real videos."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `from dfm import Session` without importing the heavy stack on `import dfm`.
    if name == "Session":
        from dfm.pipelines.session import Session

        return Session
    raise AttributeError(name)
