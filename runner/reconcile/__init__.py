"""Layer 5: reconcile plans with their state.

``decide`` is the pure state machine; ``last_change`` reads from git who last changed a
state; ``commit`` is the effect (the crash-safe commits and the files they write, through
``runner.git``), paused by tests at ``crashpoints``; ``message`` owns the commit message
(format and parse) per the trailer contract; ``runs`` ties them together for the commands.
"""
