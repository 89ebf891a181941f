"""The report's Jinja2 templates: the overview page (summary.md) and a study's page
(studies/<study>.md). Kept in Python so rendering opens no file; report/render.py fills them.

Every block ends with one blank line; `lines` prints a list of Markdown lines one per line.
"""

SUMMARY = """\
# {{ r.title }}

{{ r.preamble }}

## Overview

Each study's name links to its page (its table, statistics and figures): `studies/<study>.md`. \
*pending*: variants with no usable results yet, with the saved estimate of their training on this \
machine (`textclf plan`); the study's page names each of them and the command that trains them.

{{ r.overview | md_table(OVERVIEW_FORMATS) }}

{% if r.headline is not none %}
## Headline

Best variant per study and dataset (by test accuracy, the references' ranking; a sweep \
study's view below also ranks by validation). *its reference*: the published number for \
that variant; *study's best reference*: the highest published number in the study, with \
its variant (which may not have run here, or ran at another setting). ⚠: the reference \
trained on other rows than ours (the study's Δ column says which). *seeds* lists the \
seeds' numbers (`5`: one run, seed 5); the vectors column says which vectors each row used. \
*TF-IDF, same split*: TF-IDF + logistic regression on the same train/test split (its \
train rows named when they differ from the best variant's). \
*vs TF-IDF*: the best variant's accuracy minus the TF-IDF row's on the same test items \
(seed-averaged), with the exact paired sign-flip test's two-sided p (McNemar's test for \
one seed); p ≥ 0.05 means the data do not tell the two apart.

{{ r.headline | md_table }}

{% endif %}
## Datasets: rows used

Rows each study's results were trained and tested on (metrics.json `n_train` / `n_test`):

{{ r.datasets_used | md_table }}

The prepared splits they come from (all rows; the quick setting samples from them):

{{ r.datasets_prepared | md_table }}

"""

STUDY = """\
# {{ r.title }}: {{ s.name }}

[Overview](../summary.md) · studies: {{ studies | join(" · ") }}

## {{ s.name }}

{% if s.description %}
{{ s.description }}

{% endif %}
{% if s.reference_source %}
Reference: {{ s.reference_source }}

{% endif %}
{% if s.setting %}
{{ s.setting }}

{% endif %}
{{ s | counts_line }}
{% if s.pending %}

{{ s.pending | pending_line }}
{% endif %}

{% for line in s.pending | pending_table %}
{{ line }}
{% endfor %}
{% if s.table is not none %}
{{ s.table | md_table }}

{% endif %}
{% for line in s.cross_size_notes | cross_size_lines %}
{{ line }}
{% endfor %}
{% for line in s.chosen | chosen_lines %}
{{ line }}
{% endfor %}
{% for line in s.same_settings %}
{{ line }}
{% endfor %}
{% for line in s | figure_lines(base) %}
{{ line }}
{% endfor %}
{% for line in s.train_size | relink(base) %}
{{ line }}
{% endfor %}
{% if s.never_learned %}
**Never learned** (no better than the majority class): \
{% for vid, seed in s.never_learned %}`{{ vid }}` seed {{ seed }}{{ ", " if not loop.last }}{% endfor %}


{% endif %}
{% for line in s.scratch_gru %}
{{ line }}
{% endfor %}
{% if s.efficiency is not none %}
Ranking by accuracy per million trainable parameters (per dataset, top 10):

{{ s.efficiency | md_table }}

{% endif %}
{% for line in s.statistics | stats_lines(base) %}
{{ line }}
{% endfor %}
{% for line in s.outside_reference | outside_lines %}
{{ line }}
{% endfor %}
{% for line in s.sweep | relink(base) %}
{{ line }}
{% endfor %}
{% for line in s.training_time %}
{{ line }}
{% endfor %}
{% for line in s.errors | error_lines %}
{{ line }}
{% endfor %}
"""
