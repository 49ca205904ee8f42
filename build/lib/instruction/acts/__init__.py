"""Legal acts: acknowledgments of receipt and decision letters (PDF), and commission sessions.

An act's content is frozen when it is issued (in the transaction of the event); its PDF is
rendered once from that content, stored through the documents storage with its sha256, and never
rendered again.
"""
