"""Differential testing: one configuration, the same bytes, every implementation.

``parbench diff`` runs a syslog-ng configuration file in the reference and
in real implementations (any kind that runs a configuration text:
``TargetKind.runs_config_text``), sends each case of a corpus on a
connection of its own, collects what every implementation made of it
through a template that prints every macro the reference knows, and
compares the outputs byte for byte, masking only values that depend on the
moment of receipt (the received time, the process id in messages an
implementation generates itself).

Modules, in the direction data flows:

* ``corpus``: the corpus file (cases as exact bytes, sections, the
  configuration each section runs with, expected divergences);
* ``prepare``: a user's configuration -> the text each implementation runs
  (its sources on ports the runner chose, its destinations replaced by the
  collector with the all-macro template);
* ``record``: that template, and output records parsed and masked;
* ``runner``: one implementation, one configuration, every case: the
  records of each case;
* ``compare``: the records of the reference against a real implementation,
  case by case and field by field;
* ``cli``: the ``parbench diff`` command.

The shipped corpus (``data/corpus.txt``) and its configurations
(``data/*.conf``) are package data: ``parbench diff`` runs them when no
corpus is given.
"""
