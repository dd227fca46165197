# The auditgraph server. Built and started by docker-compose.yml next to Neo4j.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md constraints.txt ./
COPY lineage ./lineage
COPY governance ./governance
COPY reports ./reports
# Every extra, so a gate run here judges exactly as the CLI and CI do (a check whose extra is missing is
# not evaluated); constraints.txt pins the versions CI tested.
RUN pip install --no-cache-dir -c constraints.txt ".[all]"

RUN useradd --create-home --uid 10001 auditgraph
USER auditgraph
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/api/v1/health', timeout=2)"
ENTRYPOINT ["auditgraph"]
CMD ["serve", "--host", "0.0.0.0", "--port", "5000"]
