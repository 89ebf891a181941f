# Input functions shared by the rules: each looks its job up in the plan by the rule's
# wildcards. The plan (src/textclf/plan.py) is built once from params.yaml in the Snakefile.


def job(stage):
    """The plan's job for this rule instance (a clear error if params.yaml has none)."""
    return lambda wildcards: PLAN.job(stage, dict(wildcards.items()))


def job_file(stage):
    """jobs/<stage>/<key>.json: the job's resolved settings, the one argument of its script.
    Its *content* decides reruns (see settings_digest), so its timestamp is ignored: editing a
    value and editing it back, or a DVC run rewriting it, reruns nothing."""
    return ancient(lambda wildcards: job(stage)(wildcards).job_file)


def settings_digest(stage):
    """sha256 of the job file: Snakemake's params trigger reruns the job when it changes."""
    return lambda wildcards: job(stage)(wildcards).digest


def data(stage):
    """The files the job reads (other jobs' outputs, downloaded files)."""
    return lambda wildcards: list(job(stage)(wildcards).deps)


def code(stage):
    """The job's script and library files: an edit to them reruns the job."""
    return lambda wildcards: PLAN.code(job(stage)(wildcards))


def report_job(wildcards):
    """The report's job: {mode_dir} is "" (reports/, full setting) or "quick/" (reports/quick/),
    {subset_dir} "" (every study) or "subsets/<names>/" (a selection)."""
    return PLAN.report_job_at(f"reports/{wildcards.mode_dir}{wildcards.subset_dir}".rstrip("/"))
