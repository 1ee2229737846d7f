"""netserv.lab: the teaching tools, kept out of the servers themselves.

Nothing in the core (``netserv/*.py``) imports from here; these modules import
the core and attach to it from outside. Each module sits above what it uses:
no two import each other (tests/test_project.py checks the whole package).

    demo.py          ready-made echo servers and clients for every model and transport
    trace.py         record every hook a server runs (threads and forked children too)
    trace_events.py  what a trace is made of: events, lanes, the printed summary
    trace_pipe.py    the pipe that carries forked children's events to the parent
    trace_cli.py     python -m netserv trace MODEL: print the hooks of one request
    timeline.py      the trace as a figure: one row per request, colours by phase
    teach.py         show source, the class tree and the class map in a notebook
    drawing.py       what every diagram shares: the page in inches, boxes, arrows
    diagrams.py      diagrams drawn by code: TCP's conversation, the pipeline, a deaf server
    statechart.py    the lifecycle's state diagram, drawn from netserv.base.TRANSITIONS
    tinyhttp.py      notebook 15's HTTP/1.1 handler: keep-alive and the framing rules
"""
