# okrgraph: one image for the API (`okr serve`, the default), the worker
# (`okr worker`) and migrations (`okr migrate`). See docker-compose.yml.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY okrgraph ./okrgraph
# Wheels for okrgraph and every dependency, so the final stage needs no compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OKR_HOST=0.0.0.0 \
    OKR_PORT=8000
RUN useradd --create-home --uid 10001 --user-group okr
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels okrgraph && rm -rf /wheels
# `okr migrate` reads alembic.ini and migrations/ from the working directory.
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
USER okr
EXPOSE 8000
CMD ["okr", "serve"]
