"""The grader of the alert-rule exercises (`make exercises`, `make exercise N=`, `make grade N=`).

Each exercise is a folder `exercises/NN-slug/` (the task, a starter file the learner edits,
hints) and a check file `exercises/grader/checks/NN-slug.yml` that says how it is graded:

- static: the real validators (`promtool check rules`, `amtool check-config`), then the
  contract every page of this stack keeps (severity, summary, description, a runbook_url
  that ends in the alert's name, a runbook with its four sections);
- behaviour: fixtures the learner does not see, run as promtool unit tests, one file per
  criterion in one promtool run; each asks how many alerts fire, grouped by the labels the
  exercise asks for, at given times (`count by (...) (ALERTS{alertstate="firing"})`);
- routing and rendering: `amtool config routes test`, inhibition by a real Alertmanager,
  `amtool template render`;
- live (opt-in): the rule loaded into the running drill-profile stack, the catalogue's
  drill applied, the alert awaited at the sink and its resolution after the fault clears.

Reading the check files spoils the exercises; the hints are in each exercise's hints.md.
"""
