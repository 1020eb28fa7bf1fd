-- wrk script for bench/signed_requests.py: sends GETs signed beforehand, each once.
-- $DLAB_SIGNED holds one request per line, "nonce date signature"; wrk thread i of n sends
-- lines i, i+n, i+2n, ... ($DLAB_THREADS = n) so no two requests share a signature (dlabd
-- refuses replays).
local created = 0

function setup(thread)
  thread:set("index", created)
  created = created + 1
end

function init(args)
  local count = tonumber(os.getenv("DLAB_THREADS"))
  lines = {}
  local n = 0
  for line in io.lines(os.getenv("DLAB_SIGNED")) do
    if n % count == index then
      table.insert(lines, line)
    end
    n = n + 1
  end
  next_line = 1
  key_id = os.getenv("DLAB_KEY_ID")
  host = os.getenv("DLAB_HOST")
  empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
end

function request()
  local line = lines[next_line]
  next_line = next_line + 1
  local nonce, date, signature = line:match("(%S+) (%S+) (%S+)")
  return wrk.format("GET", wrk.path, {
    ["Host"] = host,
    ["X-Dlab-Date"] = date,
    ["X-Dlab-Content-Sha256"] = empty,
    ["X-Dlab-Nonce"] = nonce,
    ["Authorization"] = "DLAB-HMAC-SHA256 Credential=" .. key_id ..
        ", SignedHeaders=host;x-dlab-content-sha256;x-dlab-date;x-dlab-nonce, Signature=" ..
        signature,
  })
end
