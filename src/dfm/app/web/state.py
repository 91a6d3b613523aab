"""Everything the running web tool holds: settings, the one warm Session, projects, jobs, previewers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from dfm.app.web.config import Settings
from dfm.app.web.projects import Project, ProjectStore
from dfm.jobs import JobStore, LocalRunner


@dataclass
class WebState:
    settings: Settings
    session: Any  # dfm.pipelines.session.Session, built once in the lifespan
    projects: ProjectStore
    jobs: JobStore
    runner: LocalRunner | None  # set right after construction (its executors need this state)
    owns_session: bool = False  # built by the lifespan: its worker processes stop with the server
    _previewers: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def session_for(self, project: Project):
        """The Session with this project's subject choice (same models and caches as `session`)."""
        return self.session.with_subject(project.subject)

    def previewer(self, project: Project):
        """The project's Previewer, rebuilt when its person or collection changed."""
        from dfm.pipelines.preview import Previewer

        key = (project.id, project.person, project.collection, project.subject)
        with self._lock:
            p = self._previewers.get(project.id)
            if p is None or p[0] != key:
                p = (key, Previewer(self.session_for(project), project.input, person=project.person,
                                    collection=project.collection_paths))
                self._previewers[project.id] = p
            return p[1]

    def close(self) -> None:
        """Stop the job runner, then the session's chunk workers (when this state started them)."""
        if self.runner is not None:
            self.runner.close()
        if self.owns_session:
            self.session.close()

    def forget(self, project_id: str) -> None:
        with self._lock:
            self._previewers.pop(project_id, None)
