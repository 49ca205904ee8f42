"""The file store: stored files under random keys in ``UPLOAD_FOLDER`` (documents, legal acts), and
how they are served. It imports no domain package: the documents and the acts both sit on it."""
