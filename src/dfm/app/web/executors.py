"""What each job kind of the web tool runs: the same pipeline calls as the CLI, with the job's hooks."""

from __future__ import annotations

from typing import Any, Callable

from dfm.app.web.projects import ProjectStore
from dfm.jobs import JobContext, JobSpec
from dfm.pipelines.base import step

# rough share of a job's time per stage, for its progress bar (from the README's per-stage figures)
ANALYZE_STAGES = {"analyze": 9.0, "fit": 1.0, "preview": 2.0}
RENDER_STAGES = {"analyze": 6.0, "fit": 1.0, "decoder": 0.5, "plan": 0.2, "pool": 1.5, "render": 6.0}
COLLECTION_STAGES = {"analyze": 9.0, "fit": 1.0, "decoder": 1.0}


def make_executors(session: Any, projects: ProjectStore, warm_preview: Callable[[Any], None] | None = None
                   ) -> dict[str, Any]:
    """warm_preview(project): called after an analysis, so the first preview does not wait for the
    decoder, the appearance pool and the renderer's compiled kernels."""

    def analyze(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
        ctx.set_stages(ANALYZE_STAGES)
        project = projects.get(spec.project)
        track = session.with_subject(project.subject).analyze(project.input, hooks=ctx.hooks)
        if warm_preview is not None:
            step(ctx.hooks, "preview")
            warm_preview(project)
        return {"valid_frames": int(track.valid.sum()), "frames": int(track.n_frames)}

    def render(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
        from dfm.edits import EditList
        from dfm.pipelines.edit import EditOptions

        ctx.set_stages(RENDER_STAGES)
        project = projects.get(spec.project)
        edits = EditList.from_json_obj(spec.params["edits"], source="edit list")
        out = project.render_dir(spec.id) / "output.mp4"
        options = EditOptions(seed=int(spec.params.get("seed", 0)), person=project.person,
                              collection=project.collection_paths, hooks=ctx.hooks,
                              renderer=str(spec.params.get("renderer", "warp")),
                              preserve_speech=spec.params.get("preserve_speech"))
        result = session.with_subject(project.subject).edit(project.input, edits, out, options)
        r = result.report
        return {"output": out.name, "sidecar": result.sidecar.name, "frames": r["frames"],
                "edited_frames": r["edited_frames"], "warnings": r["warnings"], "seconds": r["seconds"],
                "decoder": r["decoder"], "preserve_speech": r["preserve_speech"]}

    def collection(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
        ctx.set_stages(COLLECTION_STAGES)
        project = projects.get(spec.project)
        subject_session = session.with_subject(project.subject)
        track = subject_session.analyze(project.input, hooks=ctx.hooks)
        for path in project.collection_paths:
            session.analyze(path, identity=track.identity, hooks=ctx.hooks)  # the person's other videos: largest face
        step(ctx.hooks, "decoder")
        return decoder_coverage(subject_session, track, person=project.person, collection=project.collection_paths)

    return {"analyze": analyze, "render": render, "collection": collection}


def decoder_coverage(session: Any, track: Any, person: str | None = None, collection=()) -> dict[str, Any]:
    """The decoder's coverage per label, as the CLI's job report gives it (`coverage` lines), plus rows."""
    decoder, info = session.decoder_for(track, person=person, collection=collection)
    rows = []
    if getattr(decoder, "decoder_", None) is not None:
        report = decoder.coverage_report()
        rows = [{"label": r.label, "pairs": r.n_pairs, "data_share": round(r.data_share, 3), "source": r.source}
                for r in report.labels]
    return {"source": info["source"], "coverage": info["coverage"], "labels": rows, "warnings": info["warnings"]}
