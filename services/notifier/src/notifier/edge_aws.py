"""The WebSocket API's AWS side: the connection table (DynamoDB) and PostToConnection.

One table, all items of a connection under its partition key ``pk = conn#<connection id>``:

    sk = "conn"            tenant_id                          the connection
    sk = "all"             tenant_id, tenant_all              its ``*`` subscription
    sk = "task#<task id>"  tenant_id, task_id, sent_seq,      a task it follows (a cursor)
                           explicit, lease_owner, lease_until
    sk = "task#<task id>"  tenant_id, sent_seq, done          a task it followed to its end

Every item has ``expires_at`` (epoch seconds, the table's TTL attribute): API Gateway ends a
connection after two hours, so nothing outlives that by much even if ``$disconnect`` is lost.
Two sparse indexes: ``by_task`` (``task_id``: the cursors of a task) and ``by_tenant``
(``tenant_all``: a tenant's ``*`` subscriptions). A finished cursor drops ``task_id``, which
takes it out of ``by_task``; its item stays so that no late fan-out can make it again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from notifier.ports import ConnectionGone, EdgeCursor

CONNECTION = "conn"
ALL_TASKS = "all"
TASK = "task#"
BY_TASK = "by_task"
BY_TENANT = "by_tenant"


def _pk(connection_id: str) -> dict[str, str]:
    return {"S": f"conn#{connection_id}"}


def _key(connection_id: str, sk: str) -> dict[str, Any]:
    return {"pk": _pk(connection_id), "sk": {"S": sk}}


def _epoch(moment: datetime) -> dict[str, str]:
    return {"N": f"{moment.timestamp():.3f}"}


def _conditional_failed(exc: ClientError) -> bool:
    code: object = exc.response.get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


def _cursor(item: dict[str, Any]) -> EdgeCursor:
    return EdgeCursor(
        connection_id=item["pk"]["S"].removeprefix("conn#"),
        tenant_id=item["tenant_id"]["S"],
        task_id=UUID(item["task_id"]["S"]),
        after=int(item["sent_seq"]["N"]),
        explicit=item.get("explicit", {}).get("BOOL", False),
    )


class DynamoEdgeConnections:
    """``EdgeConnections`` on a DynamoDB table (aiobotocore client)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    async def add_connection(
        self, connection_id: str, tenant_id: str, *, expires_at: datetime
    ) -> None:
        item = _key(connection_id, CONNECTION) | {
            "tenant_id": {"S": tenant_id},
            "expires_at": _epoch(expires_at),
        }
        await self._db.put_item(TableName=self._table, Item=item)

    async def tenant_of(self, connection_id: str) -> str | None:
        answer = await self._db.get_item(
            TableName=self._table, Key=_key(connection_id, CONNECTION), ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None or float(item["expires_at"]["N"]) < time.time():
            return None  # TTL deletes within days, not at once
        tenant: str = item["tenant_id"]["S"]
        return tenant

    async def remove_connection(self, connection_id: str) -> None:
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            async for item in self._items(connection_id, projection="pk, sk")
        ]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self._table: requests}
            while pending:  # unprocessed items come back under throttling: send them again
                answer = await self._db.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}

    async def subscriptions(self, connection_id: str) -> int:
        count = 0
        async for item in self._items(connection_id, projection="sk, explicit"):
            sk = item["sk"]["S"]
            if sk == ALL_TASKS or item.get("explicit", {}).get("BOOL", False):
                count += 1
        return count

    async def add_all_tasks(self, connection_id: str, tenant_id: str, expires_at: datetime) -> bool:
        item = _key(connection_id, ALL_TASKS) | {
            "tenant_id": {"S": tenant_id},
            "tenant_all": {"S": tenant_id},
            "expires_at": _epoch(expires_at),
        }
        return await self._put_if(item, "attribute_not_exists(pk)")

    async def remove_all_tasks(self, connection_id: str) -> None:
        await self._db.delete_item(TableName=self._table, Key=_key(connection_id, ALL_TASKS))
        async for item in self._items(connection_id, projection="sk, explicit"):
            sk = item["sk"]["S"]
            if sk.startswith(TASK) and not item.get("explicit", {}).get("BOOL", False):
                await self._delete_if(
                    _key(connection_id, sk), "explicit = :no", {":no": {"BOOL": False}}
                )

    async def following_all(self, tenant_id: str) -> list[str]:
        return [
            item["pk"]["S"].removeprefix("conn#")
            async for item in self._query(
                IndexName=BY_TENANT,
                KeyConditionExpression="tenant_all = :tenant",
                ExpressionAttributeValues={":tenant": {"S": tenant_id}},
            )
        ]

    async def add_cursor(
        self,
        cursor: EdgeCursor,
        *,
        expires_at: datetime,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        item = _key(cursor.connection_id, f"{TASK}{cursor.task_id}") | {
            "tenant_id": {"S": cursor.tenant_id},
            "task_id": {"S": str(cursor.task_id)},
            "sent_seq": {"N": str(cursor.after)},
            "explicit": {"BOOL": cursor.explicit},
            "lease_owner": {"S": owner or "-"},
            "lease_until": _epoch(lease_until) if lease_until else {"N": "0"},
            "expires_at": _epoch(expires_at),
        }
        if cursor.explicit:  # replaces one that `*` made
            return await self._put_if(
                item, "attribute_not_exists(pk) OR explicit = :no", {":no": {"BOOL": False}}
            )
        return await self._put_if(item, "attribute_not_exists(pk)")

    async def remove_cursor(
        self, connection_id: str, task_id: UUID, *, owner: str | None = None
    ) -> None:
        key = _key(connection_id, f"{TASK}{task_id}")
        if owner is None:
            await self._db.delete_item(TableName=self._table, Key=key)
        else:
            await self._delete_if(key, "lease_owner = :owner", {":owner": {"S": owner}})

    async def cursors_of_task(self, task_id: UUID) -> list[EdgeCursor]:
        return [
            _cursor(item)
            async for item in self._query(
                IndexName=BY_TASK,
                KeyConditionExpression="task_id = :task",
                ExpressionAttributeValues={":task": {"S": str(task_id)}},
            )
        ]

    async def all_cursors(self) -> list[EdgeCursor]:
        paginator = self._db.get_paginator("scan")
        cursors: list[EdgeCursor] = []
        async for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="begins_with(sk, :task) AND attribute_exists(task_id)",
            ExpressionAttributeValues={":task": {"S": TASK}},
        ):
            cursors.extend(_cursor(item) for item in page.get("Items", []))
        return cursors

    async def claim(
        self, cursor: EdgeCursor, *, owner: str, lease_until: datetime
    ) -> EdgeCursor | None:
        try:
            answer = await self._db.update_item(
                TableName=self._table,
                Key=_key(cursor.connection_id, f"{TASK}{cursor.task_id}"),
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression=(
                    "attribute_exists(pk) AND attribute_not_exists(done) AND lease_until < :now"
                ),
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": _epoch(lease_until),
                    ":now": {"N": f"{time.time():.3f}"},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return _cursor(answer["Attributes"])

    async def advance(self, cursor: EdgeCursor, *, owner: str, lease_until: datetime) -> bool:
        return await self._update_if_owner(
            cursor,
            owner,
            "SET sent_seq = :seq, lease_until = :until",
            {":seq": {"N": str(cursor.after)}, ":until": _epoch(lease_until)},
        )

    async def finish(self, cursor: EdgeCursor, *, owner: str) -> None:
        await self._update_if_owner(
            cursor,
            owner,
            "SET done = :yes, explicit = :no, sent_seq = :seq, lease_owner = :nobody,"
            " lease_until = :zero REMOVE task_id",
            {
                ":yes": {"BOOL": True},
                ":no": {"BOOL": False},
                ":seq": {"N": str(cursor.after)},
                ":nobody": {"S": "-"},
                ":zero": {"N": "0"},
            },
        )

    async def release(self, cursor: EdgeCursor, *, owner: str) -> bool:
        return await self._update_if_owner(
            cursor,
            owner,
            "SET lease_until = :zero, lease_owner = :nobody",
            {":zero": {"N": "0"}, ":nobody": {"S": "-"}},
        )

    # --- helpers -----------------------------------------------------------------------------

    async def _update_if_owner(
        self, cursor: EdgeCursor, owner: str, update: str, values: dict[str, Any]
    ) -> bool:
        try:
            await self._db.update_item(
                TableName=self._table,
                Key=_key(cursor.connection_id, f"{TASK}{cursor.task_id}"),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND lease_owner = :owner",
                ExpressionAttributeValues=values | {":owner": {"S": owner}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    async def _put_if(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> bool:
        options: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        try:
            await self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression=condition, **options
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    async def _delete_if(self, key: dict[str, Any], condition: str, values: dict[str, Any]) -> None:
        try:
            await self._db.delete_item(
                TableName=self._table,
                Key=key,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def _items(self, connection_id: str, *, projection: str) -> AsyncIterator[dict[str, Any]]:
        return self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _pk(connection_id)},
            ProjectionExpression=projection,
            ConsistentRead=True,
        )

    async def _query(self, **query: Any) -> AsyncIterator[dict[str, Any]]:
        paginator = self._db.get_paginator("query")
        async for page in paginator.paginate(TableName=self._table, **query):
            for item in page.get("Items", []):
                yield item


class ApiGatewayPoster:
    """``ConnectionPoster`` through the WebSocket API's management endpoint (aiobotocore
    ``apigatewaymanagementapi`` client whose endpoint is ``https://{api}.execute-api.{region}
    .amazonaws.com/{stage}``)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def post(self, connection_id: str, frame: str) -> None:
        try:
            await self._client.post_to_connection(ConnectionId=connection_id, Data=frame.encode())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") == "GoneException" or status == 410:
                raise ConnectionGone(connection_id) from exc
            raise
