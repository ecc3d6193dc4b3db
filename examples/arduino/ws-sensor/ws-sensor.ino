// ws-sensor: the same ESP32 sensor on the plain WebSocket hub (/ws) with format=text.
//
// Board: any ESP32 dev board (Arduino core for ESP32 2.x or 3.x).
// Library: ArduinoWebsockets by Gil Maimon (Arduino Library Manager).
// Wiring: see ../README.md (a TMP36 on GPIO34, the on-board LED on GPIO2).
//
// This sketch has NOT been compiled or run by this project: there is no Arduino
// toolchain in its CI. Its readings are the simulator's readings (same topic, same
// payload, examples/device-sim.mjs), sent as `publish` frames; the test
// test/interop/examples-arduino.test.ts builds its frames from the constants below and
// replays them against the gateway.
//
// With format=text the hub sends this device nothing but the chat lines of its room,
// one "name: text" line each, which makes the room named after the device its command
// channel: a line "led on", "led off", "led" (toggle) or "interval 2000" from anyone
// in that room is a command. No JSON parser is needed on the device.

#include <WiFi.h>
#include <ArduinoWebsockets.h>
#include <sys/time.h>

using namespace websockets;

// ---- settings: change these ----
const char WIFI_SSID[] = "your-wifi";
const char WIFI_PASS[] = "your-password";
const char GATEWAY_HOST[] = "192.168.1.20";  // the machine running mqtt-fusion
const uint16_t GATEWAY_PORT = 3000;
const char DEVICE_ID[] = "esp32-ws-1";
const int LED_PIN = 2;
const int SENSOR_PIN = 34;

// ---- wire format: identical to examples/device-sim.mjs (a test compares them) ----
const char HUB_PATH[] = "/ws?name=%s&room=%s&format=text";
const char TOPIC_READING[] = "sensors/%s/%s";
const char PAYLOAD_READING[] = "{\"v\":%.2f,\"ts\":%llu}";
const char PAYLOAD_STATE[] = "{\"v\":%d,\"ts\":%llu}";
const char FRAME_PUBLISH[] = "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"%s\",\"qos\":1,\"retain\":%s}";
const unsigned long MIN_INTERVAL_MS = 100;
const unsigned long MAX_INTERVAL_MS = 3600000;
const unsigned long BACKOFF_BASE_MS = 1000;
const unsigned long BACKOFF_CAP_MS = 30000;

WebsocketsClient ws;
bool connected = false;
unsigned long intervalMs = 5000;
unsigned long nextReadingAt = 0;
unsigned long ceilingMs = BACKOFF_BASE_MS;
unsigned long retryAt = 0;
bool led = false;

unsigned long long nowMs() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return (unsigned long long)tv.tv_sec * 1000ULL + tv.tv_usec / 1000;
}

// The payload travels as a JSON string inside the frame: escape its quotes and backslashes.
void escapeJson(const char* in, char* out, size_t size) {
  size_t n = 0;
  for (; *in && n + 2 < size; in++) {
    if (*in == '"' || *in == '\\') out[n++] = '\\';
    out[n++] = *in;
  }
  out[n] = '\0';
}

void publish(const char* kind, const char* body, bool retain) {
  char topic[96], escaped[96], frame[256];
  snprintf(topic, sizeof topic, TOPIC_READING, DEVICE_ID, kind);
  escapeJson(body, escaped, sizeof escaped);
  snprintf(frame, sizeof frame, FRAME_PUBLISH, topic, escaped, retain ? "true" : "false");
  ws.send(frame);
}

void onLine(WebsocketsMessage msg) {
  String line = msg.data();
  int sep = line.indexOf(": ");  // "alice: led on": who, then what
  String cmd = sep >= 0 ? line.substring(sep + 2) : line;
  cmd.trim();
  if (cmd.startsWith("interval ")) {
    unsigned long ms = strtoul(cmd.c_str() + 9, nullptr, 10);
    if (ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS) {
      intervalMs = ms;
      nextReadingAt = millis() + ms;
    }
  } else if (cmd == "led" || cmd.startsWith("led ")) {
    String arg = cmd.substring(3);
    arg.trim();
    led = arg == "on" ? true : arg == "off" ? false : !led;
    digitalWrite(LED_PIN, led ? HIGH : LOW);
    char body[48];
    snprintf(body, sizeof body, PAYLOAD_STATE, led ? 1 : 0, nowMs());
    publish("led", body, true);
  }
}

void onEvent(WebsocketsEvent event, String data) {
  if (event == WebsocketsEvent::ConnectionClosed) connected = false;
}

void setup() {
  Serial.begin(115200);
  pinMode(LED_PIN, OUTPUT);
  analogReadResolution(12);
  WiFi.begin(WIFI_SSID, WIFI_PASS);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  configTime(0, 0, "pool.ntp.org");
  while (nowMs() < 1700000000000ULL) delay(100);
  ws.onMessage(onLine);
  ws.onEvent(onEvent);
}

void loop() {
  if (!connected) {
    if ((long)(millis() - retryAt) < 0) return;
    char path[96];
    snprintf(path, sizeof path, HUB_PATH, DEVICE_ID, DEVICE_ID);
    connected = ws.connect(GATEWAY_HOST, GATEWAY_PORT, path);
    if (connected) {
      ceilingMs = BACKOFF_BASE_MS;
      nextReadingAt = millis() + random(intervalMs);
    } else {
      retryAt = millis() + random(ceilingMs + 1);
      ceilingMs = min(ceilingMs * 2, BACKOFF_CAP_MS);
    }
    return;
  }
  ws.poll();  // also answers the hub's pings, which keep us counted as alive
  if ((long)(millis() - nextReadingAt) >= 0) {
    nextReadingAt += intervalMs;
    float celsius = (analogReadMilliVolts(SENSOR_PIN) - 500) / 10.0f;
    char body[48];
    snprintf(body, sizeof body, PAYLOAD_READING, celsius, nowMs());
    publish("temp", body, false);
  }
}
