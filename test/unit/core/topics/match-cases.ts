// One table of topic-matching cases (MQTT 3.1.1 section 4.7) that every matcher in the
// gateway is checked against: the reference `topicMatches`, the FilterSet of logged
// topics and the retained index's trie. [filter, topic name, matches?]
export const MATCH_CASES: ReadonlyArray<readonly [string, string, boolean]> = [
  // [MQTT-4.7.1-2] "sport/tennis/player1/#" matches "sport/tennis/player1", ".../ranking", ".../score/wimbledon"
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  // "sport/#" also matches the singular "sport", since # includes the parent level
  ['sport/#', 'sport', true],
  ['#', 'sport/tennis', true],
  ['#', '/', true],
  // [MQTT-4.7.1-3] "sport/tennis/+" matches "sport/tennis/player1" but not "sport/tennis/player1/ranking"
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  // "sport/+" does not match "sport" but does match "sport/"
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  // "+/+" and "/+" match "/finance"; "+" does not
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+', '/finance', false],
  ['+', 'finance', true],
  ['+/tennis/#', 'sport/tennis/player1', true],
  // [MQTT-4.7.2-1] wildcards at the start never match topics beginning with $
  ['#', '$SYS/broker/uptime', false],
  ['+/monitor/Clients', '$SYS/monitor/Clients', false],
  ['$SYS/#', '$SYS/monitor/Clients', true],
  ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['$SYS/#', '$SYS', true],
  // [MQTT-4.7.3-4] matching is case sensitive; levels are compared exactly, spaces included
  ['ACCOUNTS', 'Accounts', false],
  ['Accounts payable', 'Accounts payable', true],
  ['a/b', 'a/b/', false],
  ['a//c', 'a//c', true],
  ['a/+/c', 'a//c', true],
  ['a/+', 'a/b/c', false],
  ['a/#', 'b', false],
  ['chat/lobby', 'chat/lobby', true],
  ['chat/lobby', 'chat/lobb', false],
  ['presence/+', 'presence/dev-1', true]
]
