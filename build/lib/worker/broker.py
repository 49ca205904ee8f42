"""The embedded broker: kombu's SQLAlchemy transport on an SQLite file, with two changes.

kombu's channel opens its read transaction with an explicit ``BEGIN IMMEDIATE``; ``instruction.db``
already begins every SQLite transaction that way (an engine-wide listener), and SQLite refuses a
nested BEGIN. And kombu keeps every consumed message in the table (``visible = False``) forever;
here it is deleted, so the file does not grow with each beat tick.
"""

from __future__ import annotations

from json import loads
from queue import Empty

from kombu.transport import sqlalchemy
from kombu.utils.encoding import bytes_to_str


class Channel(sqlalchemy.Channel):
    def _get(self, queue):
        queue_row = self._get_or_create(queue)
        model = self.message_cls
        try:
            message = (self.session.query(model)
                       .filter(model.queue_id == queue_row.id, model.visible.isnot(False))
                       .order_by(model.id).first())
            if message is None:
                raise Empty()
            payload = message.payload
            self.session.delete(message)
            return loads(bytes_to_str(payload))
        finally:
            self.session.commit()


class Transport(sqlalchemy.Transport):
    Channel = Channel
