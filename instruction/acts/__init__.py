"""Legal acts: acknowledgments of receipt and decision letters (PDF), and commission sessions.

An act's content is frozen when it is issued (in the transaction of the event); its PDF is
rendered once from that content, stored in the file store (``instruction.storage``) with its
sha256, and never rendered again. The acts sit below the dossiers (the dossier services call them,
handing them the dossier); their download is served by ``instruction.documents.views``.
"""
