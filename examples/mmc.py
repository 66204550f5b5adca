"""An M/M/c queue: one LP holds the queue and the c servers (compare SimPy's 17-line version)."""

from collections import deque

from evfabric.sim import LP, Model, Tally, TimeAverage, run


class Queue(LP):
    def __init__(self):
        self.waiting, self.busy = deque(), 0
        self.W, self.Lq = Tally(self.model.warmup), TimeAverage(self.model.warmup)

    def init(self):
        self.send(self.id, "arrive", None, self.rng.exponential(1 / self.model.lam))

    def handle(self, kind, arrived):
        if kind == "arrive":
            self.init()  # schedule the next arrival
            self.waiting.append(self.now)
        else:  # "done": a customer leaves its server
            self.busy -= 1
            self.W.add(self.now - arrived, at=arrived)
        while self.waiting and self.busy < self.model.c:
            self.busy += 1
            self.send(self.id, "done", self.waiting.popleft(), self.rng.exponential(1 / self.model.mu))
        self.Lq.set(len(self.waiting), self.now)

    def finish(self):
        return {"W": self.W.mean, "Lq": self.Lq.mean(self.now)}


class MMc(Model):
    lam, mu, c, warmup, seed, lps = 1.0, 0.625, 2, 1000.0, 1, (Queue,)


if __name__ == "__main__":  # needed by placement="processes": spawned workers import this file
    print(run(MMc(c=2), 50_000).results)  # Erlang C: W = 4.444, Lq = 2.844
