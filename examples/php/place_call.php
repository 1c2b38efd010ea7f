<?php
// Place a click-to-call through eslengine's API and follow it to its end.
//
//   ESLENGINE_URL=http://127.0.0.1:8080 ESLENGINE_KEY=... php place_call.php +12025550123 user/1000
//
// PHP 7.4 or newer with no extension beyond json (plain HTTP streams).

$base = getenv('ESLENGINE_URL') ?: 'http://127.0.0.1:8080';
$key = getenv('ESLENGINE_KEY');
if (!$key || $argc < 3) {
    fwrite(STDERR, "usage: ESLENGINE_KEY=... php place_call.php <first party> <second party>\n");
    exit(2);
}

function eslengine(string $method, string $url, string $key, ?array $body = null, array $headers = []): array
{
    $headers[] = 'Authorization: Bearer ' . $key;
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
    }
    $context = stream_context_create(['http' => [
        'method' => $method,
        'header' => implode("\r\n", $headers),
        'content' => $body === null ? '' : json_encode($body),
        'ignore_errors' => true,  // read the JSON of 4xx answers too
        'timeout' => 10,
    ]]);
    $text = file_get_contents($url, false, $context);
    if ($text === false) {
        fwrite(STDERR, "cannot reach $url\n");
        exit(1);
    }
    preg_match('{HTTP/\S+ (\d+)}', $http_response_header[0], $status);
    return [(int) $status[1], json_decode($text, true)];
}

// A retried POST with the same Idempotency-Key places the call only once.
[$status, $accepted] = eslengine('POST', "$base/v1/calls", $key,
    ['a' => $argv[1], 'b' => $argv[2], 'variables' => ['source' => 'php-example']],
    ['Idempotency-Key: php-example-' . bin2hex(random_bytes(8))]);
if ($status !== 202) {
    // 4xx: {"error": ..., "field": ..., "reason": ...}
    fwrite(STDERR, "refused ($status): " . ($accepted['field'] ?? '') . ' ' . $accepted['reason'] . "\n");
    exit(1);
}
echo "queued {$accepted['id']}: dialing " . implode(', ', $accepted['a']) . ' then ' . implode(', ', $accepted['b']) . "\n";

// Poll the call until it is final (webhooks avoid polling).
do {
    usleep(500000);
    [, $call] = eslengine('GET', "$base/v1/calls/{$accepted['id']}", $key);
} while (!in_array($call['status'], ['completed', 'failed', 'cancelled'], true));
echo trim($call['status'] . ' ' . ($call['hangup_cause'] ?? '')) . "\n";
