from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def test_runs_as_app_role(db: AsyncSession) -> None:
    user = (await db.execute(text("SELECT current_user"))).scalar_one()
    assert user == "okr_app"
