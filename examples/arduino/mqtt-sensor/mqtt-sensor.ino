// mqtt-sensor: an ESP32 temperature sensor with an LED, on mqtt-fusion over MQTT/TCP.
//
// Board: any ESP32 dev board (Arduino core for ESP32 2.x or 3.x).
// Library: ArduinoMqttClient (Arduino Library Manager).
// Wiring: see ../README.md (a TMP36 on GPIO34, the on-board LED on GPIO2).
//
// This sketch has NOT been compiled or run by this project: there is no Arduino
// toolchain in its CI. What it sends is kept identical to examples/device-sim.mjs:
// test/interop/examples-arduino.test.ts reads the constants below, checks them against
// what the simulator sends, and replays this sketch's packets against the gateway.

#include <WiFi.h>
#include <ArduinoMqttClient.h>
#include <sys/time.h>

// ---- settings: change these ----
const char WIFI_SSID[] = "your-wifi";
const char WIFI_PASS[] = "your-password";
const char BROKER_HOST[] = "192.168.1.20";  // the machine running mqtt-fusion
const uint16_t BROKER_PORT = 1883;
const char DEVICE_ID[] = "esp32-1";         // stable: the gateway keeps this device's session
const int LED_PIN = 2;                      // the on-board LED of most ESP32 dev boards
const int SENSOR_PIN = 34;                  // TMP36 Vout; an ADC1 pin (ADC2 is unusable with WiFi on)

// ---- wire format: identical to examples/device-sim.mjs (a test compares them) ----
const char TOPIC_READING[] = "sensors/%s/%s";
const char TOPIC_PRESENCE[] = "presence/%s";
const char TOPIC_COMMANDS[] = "cmd/%s/#";
const char PAYLOAD_READING[] = "{\"v\":%.2f,\"ts\":%llu}";
const char PAYLOAD_STATE[] = "{\"v\":%d,\"ts\":%llu}";
const char WILL_PAYLOAD[] = "offline";
const unsigned long KEEPALIVE_S = 30;
const uint8_t QOS = 1;
const unsigned long MIN_INTERVAL_MS = 100;
const unsigned long MAX_INTERVAL_MS = 3600000;
const unsigned long BACKOFF_BASE_MS = 1000;
const unsigned long BACKOFF_CAP_MS = 30000;

WiFiClient net;
MqttClient mqtt(net);
unsigned long intervalMs = 5000;
unsigned long nextReadingAt = 0;
unsigned long ceilingMs = BACKOFF_BASE_MS;
unsigned long retryAt = 0;
bool led = false;
bool ledChanged = false;
char topic[96];
char payload[48];

// Readings carry wall-clock milliseconds (set by NTP), so a subscriber can tell their age.
unsigned long long nowMs() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return (unsigned long long)tv.tv_sec * 1000ULL + tv.tv_usec / 1000;
}

void publish(const char* kind, const char* body, bool retain) {
  snprintf(topic, sizeof topic, TOPIC_READING, DEVICE_ID, kind);
  mqtt.beginMessage(topic, (unsigned long)strlen(body), retain, QOS);
  mqtt.print(body);
  mqtt.endMessage();  // QoS 1: waits for the PUBACK
}

// cmd/<id>/interval "2000" sets the reading interval; cmd/<id>/led "on" | "off" | anything (toggle).
void onCommand(int size) {
  String t = mqtt.messageTopic();
  char body[24];
  int n = 0;
  while (mqtt.available() && n < (int)sizeof body - 1) body[n++] = (char)mqtt.read();
  while (mqtt.available()) mqtt.read();  // the rest of a payload too long to be a command
  body[n] = '\0';
  String name = t.substring(t.lastIndexOf('/') + 1);
  if (name == "interval") {
    unsigned long ms = strtoul(body, nullptr, 10);
    if (ms >= MIN_INTERVAL_MS && ms <= MAX_INTERVAL_MS) {
      intervalMs = ms;
      nextReadingAt = millis() + ms;
    }
  } else if (name == "led") {
    led = strcmp(body, "on") == 0 ? true : strcmp(body, "off") == 0 ? false : !led;
    digitalWrite(LED_PIN, led ? HIGH : LOW);
    ledChanged = true;  // reported from loop(), not from inside the library's poll()
  }
}

bool connectBroker() {
  mqtt.setId(DEVICE_ID);
  mqtt.setCleanSession(false);  // a persistent session: commands sent while we were away wait for us
  mqtt.setKeepAliveInterval(KEEPALIVE_S * 1000);
  snprintf(topic, sizeof topic, TOPIC_PRESENCE, DEVICE_ID);
  mqtt.beginWill(topic, (unsigned short)strlen(WILL_PAYLOAD), true, QOS);
  mqtt.print(WILL_PAYLOAD);
  mqtt.endWill();
  if (!mqtt.connect(BROKER_HOST, BROKER_PORT)) return false;
  snprintf(topic, sizeof topic, TOPIC_COMMANDS, DEVICE_ID);
  mqtt.subscribe(topic, QOS);
  nextReadingAt = millis() + random(intervalMs);  // spread devices that boot together
  return true;
}

void setup() {
  Serial.begin(115200);
  pinMode(LED_PIN, OUTPUT);
  analogReadResolution(12);
  WiFi.begin(WIFI_SSID, WIFI_PASS);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  configTime(0, 0, "pool.ntp.org");
  while (nowMs() < 1700000000000ULL) delay(100);  // wait for the clock
  mqtt.onMessage(onCommand);
}

void loop() {
  if (!mqtt.connected()) {
    // Exponential backoff with full jitter, as device-sim does.
    if ((long)(millis() - retryAt) < 0) return;
    if (connectBroker()) {
      ceilingMs = BACKOFF_BASE_MS;
    } else {
      retryAt = millis() + random(ceilingMs + 1);
      ceilingMs = min(ceilingMs * 2, BACKOFF_CAP_MS);
      Serial.printf("connect failed (%d); retrying\n", mqtt.connectError());
    }
    return;
  }
  mqtt.poll();
  if (ledChanged) {
    ledChanged = false;
    snprintf(payload, sizeof payload, PAYLOAD_STATE, led ? 1 : 0, nowMs());
    publish("led", payload, true);
  }
  if ((long)(millis() - nextReadingAt) >= 0) {
    nextReadingAt += intervalMs;
    float celsius = (analogReadMilliVolts(SENSOR_PIN) - 500) / 10.0f;  // TMP36: 10 mV/°C, 500 mV at 0 °C
    snprintf(payload, sizeof payload, PAYLOAD_READING, celsius, nowMs());
    publish("temp", payload, false);
  }
}
