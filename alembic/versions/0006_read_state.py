"""read state: per-conversation message sequence numbers and per-participant read positions

Unread counts become arithmetic on two integers (`conversations.last_seq` minus the
participant's `last_read_seq`) instead of a count over message history.

Backfill: existing messages are numbered 1..n per conversation in (created_at, id) order,
and every existing participant starts caught up (position = the latest message): read
tracking did not exist before, so showing years of history as unread would be noise.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Constant defaults: PostgreSQL adds these columns without rewriting the tables.
    op.add_column(
        "conversations",
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("messages", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column(
        "conversation_participants",
        sa.Column("last_read_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "conversation_participants",
        sa.Column("last_read_message_id", sa.UUID(), nullable=True),
    )

    op.execute(
        """
        UPDATE messages AS m SET seq = numbered.seq
        FROM (
            SELECT id, row_number() OVER (
                PARTITION BY conversation_id ORDER BY created_at, id
            ) AS seq
            FROM messages
        ) AS numbered
        WHERE m.id = numbered.id
        """
    )
    op.alter_column("messages", "seq", nullable=False)
    # Resolves a read position (message id <-> seq) and guards against a seq used twice.
    op.create_index(
        "uq_messages_conversation_seq", "messages", ["conversation_id", "seq"], unique=True
    )
    op.execute(
        """
        UPDATE conversations AS c SET last_seq = latest.seq
        FROM (SELECT conversation_id, max(seq) AS seq FROM messages GROUP BY conversation_id)
            AS latest
        WHERE c.id = latest.conversation_id
        """
    )
    op.execute(
        """
        UPDATE conversation_participants AS p
        SET last_read_seq = c.last_seq, last_read_message_id = m.id
        FROM conversations AS c
        JOIN messages AS m ON m.conversation_id = c.id AND m.seq = c.last_seq
        WHERE p.conversation_id = c.id AND c.last_seq > 0
        """
    )


def downgrade() -> None:
    op.drop_column("conversation_participants", "last_read_message_id")
    op.drop_column("conversation_participants", "last_read_seq")
    op.drop_index("uq_messages_conversation_seq", table_name="messages")
    op.drop_column("messages", "seq")
    op.drop_column("conversations", "last_seq")
