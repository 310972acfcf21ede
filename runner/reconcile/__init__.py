"""Layer 5: reconcile plans with their state.

``decide`` is the pure state machine; ``history`` reads from git who last changed a state;
``gitops`` is the effect (commits, the working tree, pushing); ``message`` formats commits
per the trailer contract; ``runs`` ties them together for the commands.
"""
