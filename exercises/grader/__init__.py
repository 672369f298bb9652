"""The grader of the alert-rule exercises (`make exercises`, `make exercise N=`, `make grade N=`).

Each exercise is a folder `exercises/NN-slug/` (the task, a starter file, hints) and a check
file `exercises/grader/checks/NN-slug.yml` that says how it is graded. The learner works on
a copy of the starter in a gitignored workspace (`workspace/NN-slug/`, or
EXERCISES_WORKSPACE), so the tracked tree stays as shipped.

- static: the real validators (`promtool check rules`, `amtool check-config`; Loki's ruler
  for LogQL), then the contract every page of this stack keeps (severity, summary,
  description, a runbook_url that ends in the alert's name, a runbook with its four sections);
- behaviour: fixtures the learner does not see, as promtool unit tests (one file per
  criterion); each asks how many alerts fire, grouped by the labels the exercise asks for,
  at given times (`count by (...) (ALERTS{alertstate="firing"})`); for LogQL, log lines
  pushed into Loki and the rule's expression evaluated by it;
- routing and rendering: `amtool config routes test`, inhibition by real Alertmanagers,
  `amtool template render` over the exercise's groups of alerts;
- live (opt-in): the rule loaded into the running drill-profile stack, the catalogue's
  drill applied, the alert awaited at the sink and its resolution after the fault clears.

A batch of answers (the grader's own tests grade two hundred) runs each tool once per
stage. An answer PASSES only when every stage ran; a stage that could not run (an image
missing) leaves it NOT GRADED, naming what it needs.

Reading the check files spoils the exercises; the hints are in each exercise's hints.md.
"""
