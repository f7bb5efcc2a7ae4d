# civicair server image: the ingest, the API and the `civicair` command (station
# onboarding). One image, several services: docker-compose.yml picks the command.
#   docker build -t civicair .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
# Only what the server extra installs; the bridge's sources come along because the
# ingest imports the wire contract from firmware_bridge/.
COPY pyproject.toml README.md ./
COPY civicair ./civicair
COPY firmware_bridge ./firmware_bridge
COPY ingest ./ingest
COPY api ./api
COPY dashboards ./dashboards
COPY rollup ./rollup
COPY archive ./archive
RUN python -m venv /opt/civicair \
 && /opt/civicair/bin/pip install --no-cache-dir --disable-pip-version-check ".[server]"

FROM python:3.11-slim-bookworm
COPY --from=build /opt/civicair /opt/civicair
ENV PATH=/opt/civicair/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed uid, no login, no root: the ingest keeps its dead letters in /var/lib/civicair,
# the archive its files in /var/lib/civicair/archive (a named volume takes the owner of
# the directory it is mounted on when it is first created).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/civicair --create-home \
        --shell /usr/sbin/nologin civicair \
 && install -d -o civicair -g civicair /var/lib/civicair/archive
USER civicair
WORKDIR /var/lib/civicair
# 8000: the API; 9108: the ingest's /metrics and /health; 9109: the rollup worker's.
EXPOSE 8000 9108 9109
ENTRYPOINT ["civicair"]
CMD ["--help"]
