#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "operator/kube/kube_client.h"

// List+watch of one resource (in one namespace, or all with ""), like client-go's reflector
// and shared informer: lists in pages, then watches from the list's resourceVersion with
// bookmarks; reconnects from the last seen resourceVersion when a watch ends; on 410 Gone
// (StartWatch OUT_OF_RANGE, or an ERROR event with code 410) relists and swaps the cache at
// once, sending deletes for objects that vanished while away; on errors retries with jittered
// exponential back-off that resets after a healthy period.
//
// Handlers run one at a time (never concurrently with each other), on the informer's threads,
// without the cache lock held: a handler may read the cache. They must not call Stop().
// The cache accessors are thread-safe.
namespace pgbranch::kube {

class Informer {
 public:
  struct Handlers {
    std::function<void(const web::json::value& obj)> on_add;
    std::function<void(const web::json::value& old_obj, const web::json::value& obj)> on_update;
    std::function<void(const web::json::value& obj)> on_delete;
    // Every resync_period, for each cached object; unset = on_update(obj, obj) like client-go.
    std::function<void(const web::json::value& obj)> on_resync;
  };
  struct Options {
    std::string label_selector;
    std::string field_selector;
    int64_t page_size = 500;
    int watch_timeout_seconds = 300;
    absl::Duration resync_period = absl::ZeroDuration();  // zero = no resync
    absl::Duration initial_backoff = absl::Milliseconds(800);
    absl::Duration max_backoff = absl::Seconds(30);
    absl::Duration healthy_period = absl::Minutes(2);  // back-off resets after this long OK
  };

  Informer(KubeClient* client, Resource resource, std::string ns, Handlers handlers,
           Options options);
  Informer(KubeClient* client, Resource resource, std::string ns, Handlers handlers)
      : Informer(client, std::move(resource), std::move(ns), std::move(handlers), Options()) {}
  ~Informer();  // Stop()

  void Start();  // starts the loop thread; call once
  void Stop();   // ends the watch and the thread; idempotent; handlers are not called after

  // True once the first list has been put into the cache (and its adds delivered).
  bool HasSynced();
  bool WaitForSync(absl::Duration timeout);

  // Cache reads: key "namespace/name" (or "name" for cluster-scoped objects).
  std::optional<web::json::value> Get(const std::string& key);
  std::vector<web::json::value> List();
  std::vector<std::string> Keys();
  // The resourceVersion the next watch starts from.
  std::string LastResourceVersion();
  // How many times the informer listed (1 after the first sync; +1 per relist).
  int ListCount();

 private:
  enum class WatchOutcome { kEnded, kGone, kFailed };

  void Run();
  absl::Status ListAndReplace();
  WatchOutcome WatchOnce(absl::Status* error);
  void HandleEvent(const WatchEvent& ev);
  void Resync();
  // Sleeps up to `d`; false when stopped meanwhile.
  bool SleepFor(absl::Duration d);
  absl::Duration NextBackoff();

  KubeClient* const client_;
  const Resource resource_;
  const std::string ns_;
  const Handlers handlers_;
  const Options options_;

  absl::Mutex handler_mu_;  // serializes handler calls; taken before mu_, never inside it
  absl::Mutex mu_;
  std::map<std::string, web::json::value> cache_ ABSL_GUARDED_BY(mu_);
  std::string rv_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_done_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;  // an ERROR 410 event arrived on this watch
  absl::Status watch_end_ ABSL_GUARDED_BY(mu_);
  int list_count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  absl::Time last_failure_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time next_resync_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::mt19937 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
  std::thread thread_;
};

}  // namespace pgbranch::kube
