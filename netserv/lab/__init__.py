"""netserv.lab: the teaching tools, kept out of the servers themselves.

Nothing in the core (``netserv/*.py``) imports from here; these modules import
the core and attach to it from outside.

    demo.py    ready-made echo servers and clients for every model and transport
    trace.py   record every hook a server runs (threads and forked children too)
    teach.py   show source, class maps and hierarchies in a notebook
"""
