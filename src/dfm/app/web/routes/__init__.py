"""One router per resource: projects, edits (and preview), persons, jobs (render, status, output), health."""
